#!/usr/bin/env node
import { PRODUCT_PLUGS } from './plugs.js';
import { ovmigrateProgram, runProgram } from './program.js';

runProgram(ovmigrateProgram(PRODUCT_PLUGS));
